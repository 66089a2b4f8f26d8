"""The body model wrapper: our FK equals smplx's joints; posing, scaling and look-up behave."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from body.body_model import DEFAULT_BODY, BodyModel, BodyModelError, find_body_model
from motion.formats import Motion, prepare_for_body


@pytest.fixture(scope="module")
def body():
    return BodyModel(DEFAULT_BODY)


def random_motion(n, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    return Motion(poses=(rng.normal(size=(n, 52, 3)) * scale).astype(np.float32),
                  trans=rng.normal(size=(n, 3)).astype(np.float32))


def test_fk_joints_equal_smplx_joints(body):
    m = random_motion(16)
    fk = body.joints(m)
    params = m.smplx_params()
    n = len(m)
    z3 = torch.zeros(n, 3)
    with torch.no_grad():
        out = body.model(**params, betas=torch.zeros(n, 10), expression=torch.zeros(n, 10), jaw_pose=z3,
                         leye_pose=z3, reye_pose=z3)
    ref = out.joints[:, :55].numpy()
    assert np.abs(fk - ref).max() < 1e-4  # metres: identical up to float32 rounding


def test_vertices_stream_in_chunks_of_any_length(body):
    m = random_motion(70, scale=0.2)
    chunks = list(body.vertices(m, chunk=32))
    assert [c.shape[0] for c in chunks] == [32, 32, 6]
    assert chunks[0].shape[1:] == (body.n_vertices, 3) and all(np.isfinite(c).all() for c in chunks)


def test_rest_pose_geometry(body):
    j = body.rest_joints.numpy()
    assert j.shape == (55, 3)
    assert j[15, 1] > j[0, 1] > j[7, 1]          # head above pelvis above ankle: y up
    assert j[16, 0] > 0 > j[17, 0]                 # left shoulder at +x
    assert j[20, 0] > j[18, 0] > j[16, 0]          # left arm stretched along +x (T-pose)
    assert j[10, 2] > j[7, 2]                      # toes in front of the ankle: facing +z
    assert 0.7 < body.leg_length < 1.1


def test_prepare_scales_translation_by_leg_length(body):
    m = random_motion(4)
    prepared = prepare_for_body(m, body)
    np.testing.assert_allclose(prepared.trans, m.trans * body.translation_scale, rtol=1e-5)
    assert prepare_for_body(replace(m, fps=60.0), body).fps == 30


def test_lookup_order_and_errors(tmp_path):
    assert find_body_model() in (DEFAULT_BODY, DEFAULT_BODY.parent.parent / "smpl_model/smplx/SMPLX_NEUTRAL.npz")
    with pytest.raises(BodyModelError, match="not found"):
        find_body_model(tmp_path / "missing.npz")
    with pytest.raises(BodyModelError, match="SMPLX_NEUTRAL.npz"):
        find_body_model(tmp_path)  # a folder without the file
    bad = tmp_path / "bad.npz"
    np.savez(bad, v_template=np.zeros((3, 3)))
    with pytest.raises(BodyModelError, match="missing"):
        BodyModel(bad)
