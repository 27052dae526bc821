"""Files and terminals: atomic writes, progress reporting, video, the argparse types every command shares (a side
package any stage may import; it imports nothing of vid2world)."""
