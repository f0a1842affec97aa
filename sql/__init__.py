"""SQL that ships with kmo: warehouse migrations (``migrations/NNN_name.sql``, applied in order)
and, later, saved queries. Loaded with importlib.resources so an installed kmo finds them."""
