"""The contacts directory MicroSIP fetches from the daemon: its key, its contents, its presence.

* :mod:`.key` - the read-only directory key (``<home>/directory-key``), apart from the API token.
* :mod:`.service` - the response: MicroSIP's contacts, presence from the calls on now, the URL.

Only the refresh bounds live here, so that the CLI can show them without importing the rest.
"""

# Seconds between MicroSIP's reloads. MicroSIP 3.22 uses a body's refresh as it is (only a
# Cache-Control max-age is clamped to 60 s or more), so the lamps follow calls this closely;
# each reload is one loopback request, and MicroSIP rewrites Contacts.xml only on a change.
DEFAULT_REFRESH = 15
MIN_REFRESH = 5
MAX_REFRESH = 86400
