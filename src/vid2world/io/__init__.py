"""Files and terminals: atomic writes, progress reporting, video (a side package any stage may import)."""
