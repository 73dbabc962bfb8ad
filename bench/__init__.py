"""haul's benchmarks: ratios against bare baselines measured in the same run."""
