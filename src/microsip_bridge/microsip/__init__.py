"""MicroSIP's own files and command grammar, exactly as MicroSIP's source behaves (the library)."""
