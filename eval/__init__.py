"""Evaluation of generated dances (SPEC §8): feature extractors, metrics, reports, test-set generation.

- :mod:`eval.protocol`  the two protocols (``clean``, ``reference``) and every convention that differs
- :mod:`eval.features`  66-d kinetic and 32-d geometric features of a (T, 22, 3) joint sequence
- :mod:`eval.metrics`   FID, diversity, z-scoring, BAS with its chance level, foot skating ratio, PFC
- :mod:`eval.data`      motion folders → body joints (forward kinematics), music files → beats
- :mod:`eval.report`    a whole evaluation (folders in, JSON + markdown + plots out)
- :mod:`eval.plots`     matplotlib figures
- :mod:`eval.batch`     test-set generation behind ``generate_all.py``
- :mod:`eval.baselines` reference rows: a random training clip, a motionless body

Importing the package does no work; heavy modules (torch, smplx, librosa, matplotlib) are imported
by the functions that need them.
"""
