-- Ventas (sales) of one country since {start_date}.
-- Placeholders come from config/common_params.yaml merged under config/<Country>.yaml.
SELECT
    id_transaccion,
    fecha,
    pais,
    id_producto,
    cantidad,
    {factor} as factor_expansion,
    monto_total,
    moneda,
    cliente,
    actualizado
FROM {database}.{schema}.{sales_table}
WHERE pais = '{country_code}'
  AND fecha >= '{start_date}'
