"""Answers from the store: comparisons with statistics, scaling, bottlenecks, cost and energy.

Everything here reads stored runs (never a live one) and imports no framework.
"""
