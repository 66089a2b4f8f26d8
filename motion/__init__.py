"""What a dance is on disk and in memory: the 319-d vector layout, the Motion type and its file formats, BVH reading, and the masks of an edit (which frames and parts are kept)."""
