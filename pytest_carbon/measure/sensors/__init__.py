"""Energy sensors: counters (RAPL, NVML) and the CPU-time estimate, behind one protocol."""
