"""Running one benchmark inside its own process: the child entry point, the phases
(setup, warm-up, timed training, validation, inference), staging, and the stored result."""
