-- Active products of one country's catalogue.
SELECT
    id_producto,
    nombre,
    categoria,
    precio,
    activo,
    creado
FROM {database}.{schema}.Productos
WHERE activo = 1
