"""The calculator's learning part: predict a training step's time from model descriptors.

Total training time is decomposed, so that dataset size and epochs are exact multipliers and
never learned (``decompose.py``); only the step time is predicted (``models.py``), and its
accuracy is measured honestly by cross-validation (``evaluate.py``).
"""
