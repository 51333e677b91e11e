-- disable mondialrelay
UPDATE delivery_carrier
SET mondialrelay_brand = 'BDTEST  ';
