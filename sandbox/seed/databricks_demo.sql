-- Demo workspace for the Databricks double (bridge-sandbox databricks --seed ...).
-- Spark SQL, `;`-separated. The `main` catalog with its `default` schema exists
-- already, as in a new Unity Catalog workspace.

CREATE SCHEMA IF NOT EXISTS main.demo COMMENT 'Demo data for the bridge';

-- Landing volume for extractions (Parquet files from SQL Server).
CREATE VOLUME IF NOT EXISTS main.demo.landing COMMENT 'Extraction landing zone';

-- A panel table with mixed types, read by sync events.
CREATE TABLE IF NOT EXISTS main.demo.calibrated_panel (
    panel_id      BIGINT NOT NULL,
    country       STRING,
    period        DATE,
    household_id  INT,
    weight        DECIMAL(18,6),
    spend         DOUBLE,
    is_active     BOOLEAN,
    tags          ARRAY<STRING>,
    updated_at    TIMESTAMP
) USING DELTA COMMENT 'Calibrated household panel (demo)';

INSERT INTO main.demo.calibrated_panel VALUES
    (1, 'CO', DATE '2024-01-01', 1001, 1.250000, 152.75, true,  array('urban', 'north'), TIMESTAMP '2024-01-05 08:00:00'),
    (2, 'CO', DATE '2024-01-01', 1002, 0.980000, 98.10,  true,  array('rural'),          TIMESTAMP '2024-01-05 08:00:00'),
    (3, 'CO', DATE '2024-02-01', 1001, 1.310000, 171.00, true,  array('urban', 'north'), TIMESTAMP '2024-02-05 08:00:00'),
    (4, 'MX', DATE '2024-01-01', 2001, 2.000000, 300.40, false, array('urban'),          TIMESTAMP '2024-01-06 09:30:00'),
    (5, 'MX', DATE '2024-02-01', 2002, 0.750000, 80.00,  true,  array(),                 TIMESTAMP '2024-02-06 09:30:00'),
    (6, 'MX', DATE '2024-02-01', 2003, 1.125000, NULL,   NULL,  NULL,                    NULL);

-- Sync events polled by the bridge (bridge.events.bridge_events, issue 7).
CREATE CATALOG IF NOT EXISTS bridge COMMENT 'SQL-Databricks Bridge control tables';
CREATE SCHEMA IF NOT EXISTS bridge.events;

CREATE TABLE IF NOT EXISTS bridge.events.bridge_events (
    event_id       STRING NOT NULL,
    operation      STRING NOT NULL,
    source_table   STRING NOT NULL,
    target_table   STRING NOT NULL,
    primary_keys   ARRAY<STRING>,
    filter         STRING,
    columns        ARRAY<STRING>,
    requested_by   STRING,
    status         STRING,
    rows_expected  BIGINT,
    rows_affected  BIGINT,
    discrepancy    BIGINT,
    error_message  STRING,
    attempts       INT,
    claimed_by     STRING,
    claimed_at     TIMESTAMP,
    created_at     TIMESTAMP,
    completed_at   TIMESTAMP
) USING DELTA;

-- One pending event, inserted the way users do it in Databricks: the panel
-- (without its ARRAY column, which SQL Server cannot hold) into
-- KWP_Colombia.dbo.CalibratedPanel, requested by a user of config/permissions.yaml.
INSERT INTO bridge.events.bridge_events
    (event_id, operation, source_table, target_table, primary_keys, columns, requested_by, status,
     attempts, created_at)
VALUES
    (uuid(), 'INSERT', 'main.demo.calibrated_panel', 'KWP_Colombia.dbo.CalibratedPanel',
     array('panel_id'),
     array('panel_id', 'country', 'period', 'household_id', 'weight', 'spend', 'is_active', 'updated_at'),
     'proyecto-colombia', 'pending', 0, current_timestamp());
