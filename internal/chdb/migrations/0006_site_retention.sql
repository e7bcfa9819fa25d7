-- How many days of events and visits each site keeps; 0 keeps them forever.
-- The lifecycle job (package dashboard) drops whole months nobody keeps and
-- deletes the older rows of each site (docs/privacy.md, "Data lifecycle").
ALTER TABLE auth_sites ADD COLUMN retention_days UInt32;
