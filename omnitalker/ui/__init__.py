"""Gradio showcase (app.py: Talk / Lip-sync handlers in handlers.py, the Learn tab in learn.py with the 2-D flow
toy of toy_flow.py) and the command line (cli.py, ``python -m omnitalker``)."""
