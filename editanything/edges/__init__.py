"""Edge and line extractors (HED, …): used by the sketch styles and by ControlNet conditioning, below both."""
