-- Sites may ask Pulse to honour the browser's Do Not Track header.
ALTER TABLE auth_sites ADD COLUMN honor_dnt UInt8;
