"""Beat sync: kinematic beats, and the time warp that moves a dance's beats onto the song's."""
