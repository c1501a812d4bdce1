-- Asks the bridge to copy a table into SQL Server: one pending event, as in
-- the deck. Parameters come from the job (named parameter markers); the
-- column list leaves out the panel's ARRAY column, which SQL Server cannot hold.
INSERT INTO bridge.events.bridge_events
  (event_id, operation, source_table, target_table, primary_keys, columns, requested_by, status,
   attempts, created_at)
VALUES
  (uuid(), 'UPSERT', :source_table, :target_table, array('panel_id'),
   array('panel_id', 'country', 'period', 'household_id', 'weight', 'spend', 'is_active', 'updated_at'),
   :requested_by, 'pending', 0, current_timestamp());
