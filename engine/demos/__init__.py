"""Demo implementations. Each function takes (params, device) and returns a `DemoOutput`; they are imported
only when a demo runs, so torch/matplotlib stay out of `import engine`."""
