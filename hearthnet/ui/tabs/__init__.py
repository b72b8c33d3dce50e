"""One module per tab of the Gradio app; each has build(node, ...) called inside the app's gr.Tabs()."""
