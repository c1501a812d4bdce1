-- Seed data for tests/corpus/tsql_types.yaml: result-column type derivation of the
-- SQL Server sandbox, checked against rules stated in Microsoft's T-SQL documentation.
-- Plain T-SQL only (CREATE DATABASE, USE, CREATE TABLE, INSERT ... VALUES with literals).
-- Batches are separated by GO lines.
--
-- datetime / smalldatetime literals use the ISO 8601 'YYYY-MM-DDThh:mm:ss' form, which
-- does not depend on SET LANGUAGE / SET DATEFORMAT; date, datetime2, datetimeoffset and
-- time literals use 'YYYY-MM-DD hh:mm:ss[.fffffff]', which is also language-independent
-- for those types.
--
-- Every value in the YAML corpus was computed by hand from the rows below: change a row
-- here and the expectations there must change too.

CREATE DATABASE corpus
GO
USE corpus
GO

CREATE TABLE dbo.productos (
    id_producto  int            NOT NULL PRIMARY KEY,
    nombre       nvarchar(200)  NOT NULL,
    categoria    varchar(50)    NULL,
    precio_lista decimal(10,2)  NOT NULL,
    activo       bit            NOT NULL
)
GO

CREATE TABLE dbo.ventas (
    id           int               NOT NULL PRIMARY KEY,
    id_producto  int               NOT NULL,
    pais         char(2)           NOT NULL,
    tiny         tinyint           NOT NULL,
    chico        smallint          NOT NULL,
    cantidad     int               NOT NULL,
    grande       bigint            NOT NULL,
    activo       bit               NOT NULL,
    monto        decimal(18,2)     NOT NULL,
    factor       decimal(10,6)     NOT NULL,
    preciso      numeric(38,10)    NULL,
    precio       money             NOT NULL,
    precio_chico smallmoney        NULL,
    ratio        float             NOT NULL,
    ratio_r      real              NULL,
    codigo       varchar(3)        NULL,
    categoria    varchar(50)       NULL,
    cliente      nvarchar(100)     NULL,
    notas        nvarchar(max)     NULL,
    detalle      varchar(max)      NULL,
    fecha        date              NOT NULL,
    creado       datetime          NOT NULL,
    registrado   datetime2(3)      NOT NULL,
    exacto       datetime2(7)      NULL,
    corto        smalldatetime     NULL,
    actualizado  datetimeoffset(3) NULL,
    hora         time(3)           NULL,
    guid         uniqueidentifier  NULL,
    hash         varbinary(16)     NULL
)
GO

INSERT INTO dbo.productos (id_producto, nombre, categoria, precio_lista, activo) VALUES
    (1001, N'Agua con gas 600ml', 'Bebidas', 2.50, 1),
    (1002, N'Papas fritas limón', 'Snacks', 3.75, 1),
    (1003, N'Café ☕ Andino', 'Bebidas', 12.00, 0),
    (1004, N'Galletas de avena', 'Snacks', 1.25, 1),
    (1005, N'Jabón de coco', NULL, 4.10, 1)
GO

INSERT INTO dbo.ventas (id, id_producto, pais, tiny, chico, cantidad, grande, activo,
    monto, factor, preciso, precio, precio_chico, ratio, ratio_r, codigo, categoria,
    cliente, notas, detalle, fecha, creado, registrado, exacto, corto, actualizado,
    hora, guid, hash) VALUES
    (1, 1001, 'CO', 10, 300, 10, 5000000000, 1,
     100.50, 1.500000, 12.3456789012, 1234.5000, 10.2500, 2.5, 0.25, 'abc', 'Bebidas',
     N'José Pérez', N'Nota única', 'detalle uno', '2024-01-31', '2024-01-31T13:45:00.000',
     '2024-01-31 13:45:00.123', '2024-01-31 13:45:00.1234567', '2024-01-31T13:45:00',
     '2024-01-31 13:45:00.123 -05:00', '13:45:00.123',
     '6F9619FF-8B86-D011-B42D-00C04FC964FF', 0x0A0B),
    (2, 1002, 'MX', 20, -150, 3, -42, 0,
     -12.50, 0.250000, NULL, 99.9900, NULL, -1.5, NULL, NULL, 'Snacks',
     N'東京商事', NULL, NULL, '2024-02-29', '2024-02-29T08:00:00.000',
     '2024-02-29 08:00:00.500', NULL, NULL,
     NULL, NULL,
     NULL, NULL),
    (3, 1001, 'CO', 255, 32767, 7, 0, 1,
     0.00, 2.000000, -1.0000000001, 0.0000, -5.5000, 15000000000.0, 1.5, 'xy', NULL,
     NULL, N'', '', '2023-12-31', '2023-12-31T23:59:59.997',
     '2023-12-31 23:59:59.999', '2023-12-31 23:59:59.9999999', '2023-12-31T23:59:00',
     '2023-12-31 23:59:59.999 +00:00', '23:59:59.999',
     '00000000-0000-0000-0000-000000000001', 0x00),
    (4, 1003, 'PE', 0, 0, -7, 4000000000, 0,
     250.75, 0.125000, 100.0000000000, 50.2500, 0.5000, 0.125, -2.5, 'zzz', 'Bebidas',
     N'Ñandú Ltda', N'Ω', 'x', '2024-03-01', '2024-03-01T00:00:00.000',
     '2024-03-01 00:00:00.000', '2024-03-01 00:00:00.0000000', '2024-03-01T00:00:00',
     '2024-03-01 00:00:00.000 +05:30', '00:00:00.000',
     'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 0xFFFF),
    (5, 1002, 'MX', 5, -32768, 1, 1, 1,
     1.00, 1.000000, 0.5000000000, 1.0000, 1.0000, 1.0, 1.0, 'a', 'Snacks',
     N'Ana', NULL, NULL, '2024-12-31', '2024-12-31T12:00:00.000',
     '2024-12-31 12:00:00.000', NULL, NULL,
     NULL, '12:00:00.000',
     NULL, NULL),
    (6, 1004, 'AR', 1, 1, 0, -1, 0,
     -0.01, 0.000001, NULL, -99.9900, NULL, 0.0, NULL, NULL, NULL,
     N'Zoë', NULL, NULL, '2020-02-29', '2020-02-29T06:30:00.000',
     '2020-02-29 06:30:00.250', NULL, NULL,
     NULL, NULL,
     NULL, NULL)
GO
