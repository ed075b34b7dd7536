"""Terminal rendering with rich: what the CLI prints for runs, analyses, sweeps and the
calculator. Readers only: nothing here measures or stores."""
