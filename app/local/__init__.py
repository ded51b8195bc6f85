"""Local-only development tools: the Data API and Storage test stand-ins (dataapi, storage) and
JWT minting (tokens).

Nothing here runs in production: on a real Supabase project the Data API is PostgREST, Storage
is Supabase's Storage server and tokens come from Supabase Auth.
"""
