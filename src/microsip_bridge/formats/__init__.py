"""Contact file formats that are not MicroSIP's own: vCard and our JSON (each produces Contacts)."""
