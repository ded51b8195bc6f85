"""Local-only development tools: the Data API and Realtime test stand-ins (dataapi, realtime) and
JWT minting (tokens).

Nothing here runs in production: on a real Supabase project the Data API is PostgREST, Realtime
is Supabase's Realtime server and tokens come from Supabase Auth.
"""
