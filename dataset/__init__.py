"""Building training data: the FineDance dataset, CMU retargeting and the open corpus."""
