"""Sweeps: the YAML file and its expansion (file.py), running the plan (execute.py)."""
