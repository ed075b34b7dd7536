"""``dlbench dashboard``: a Streamlit app over the results store, opened read-only."""
