"""``dlbench report``: one self-contained HTML file (Plotly's JavaScript embedded) that answers
the questions of the stored runs: hardware, results, throughput, telemetry, comparisons,
scaling, bottlenecks and cost. It opens anywhere, offline."""
