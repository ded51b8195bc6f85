"""Local-only development tools: the Data API, Realtime and Storage test stand-ins (dataapi,
realtime, storage) and JWT minting (tokens).

Nothing here runs in production: on a real Supabase project the Data API is PostgREST, Realtime
is Supabase's Realtime server, Storage is Supabase's Storage server and tokens come from Supabase Auth.
"""
