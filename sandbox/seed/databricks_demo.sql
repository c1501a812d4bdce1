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
) USING DELTA
TBLPROPERTIES (delta.enableChangeDataFeed = true);

-- Who may do what (Unity Catalog). The projects' principals (see
-- config/permissions.yaml, databricks_principals) may write sync events, and
-- Colombia's may read the panel it syncs into KWP_Colombia.
GRANT USE CATALOG ON CATALOG bridge TO `colombia-etl@example.com`;
GRANT USE CATALOG ON CATALOG bridge TO `mexico-etl@example.com`;
GRANT USE SCHEMA ON SCHEMA bridge.events TO `colombia-etl@example.com`;
GRANT USE SCHEMA ON SCHEMA bridge.events TO `mexico-etl@example.com`;
GRANT SELECT, MODIFY ON TABLE bridge.events.bridge_events TO `colombia-etl@example.com`;
GRANT SELECT, MODIFY ON TABLE bridge.events.bridge_events TO `mexico-etl@example.com`;
GRANT USE CATALOG ON CATALOG main TO `colombia-etl@example.com`;
GRANT USE SCHEMA ON SCHEMA main.demo TO `colombia-etl@example.com`;
GRANT SELECT ON TABLE main.demo.calibrated_panel TO `colombia-etl@example.com`;

-- Sync events are inserted by the principals that act for a project (the
-- demo inserts one as colombia-etl@example.com through the Statement
-- Execution API); the bridge learns who wrote each from the table's history.
