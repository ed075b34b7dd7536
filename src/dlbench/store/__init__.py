"""The results store: the Store class (database.py), its schema and migrations, typed
records for readers (stored.py), liveness, import, export and baselines."""
