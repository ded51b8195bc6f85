-- Why (data step): before the backfill touches any multi-WABA row, every one that exists now is
-- copied, exactly as it is, to the append-only archive (the record that nothing was lost).

select private.archive_multi_waba_messages();
