"""Local-only development tools: the Data API test stand-in (dataapi) and JWT minting (tokens).

Nothing here runs in production: on a real Supabase project the Data API is PostgREST and
tokens come from Supabase Auth.
"""
