"""Play inside a world model: the browser page and its server (`vid2world play`), one `Game` per player."""
