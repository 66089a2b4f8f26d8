"""After sampling: kinematic beats, beat sync (the time warp that moves a dance's beats onto the song's)
and the clean-up of the sampled dance (foot locking)."""
