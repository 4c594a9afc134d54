"""Pure media steps the workers call: video, faces, storage. No Flask, no database."""
