"""Parts of the Gradio showcase (omnitalker/app.py): the Talk / Lip-sync handlers and the Learn tab."""
