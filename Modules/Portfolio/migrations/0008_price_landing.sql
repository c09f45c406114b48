-- Prices arrive by the hundred thousand (five years of closes for a few hundred
-- instruments), so their landing is held to what a raw COPY into the same table costs.

-- Every price row already names its instrument by (tenant_id, symbol), and instruments
-- cascade from their tenant, so the separate tenant key only checked the same fact again:
-- one foreign-key lookup per row, a quarter of a large import's landing.
ALTER TABLE portfolio_prices DROP CONSTRAINT portfolio_prices_tenant_id_fkey;

-- Lands the staged rows of a price import (symbol, date, close as text; checked, one row
-- per key) and returns how many were written. MERGE joins the file to the table once and
-- inserts plainly, where INSERT … ON CONFLICT probes the key for every row first (about a
-- third slower here). MERGE fails on a key another transaction inserted meanwhile (a tick
-- for today landing during the import); then the upsert, which waits for it, lands them.
CREATE FUNCTION portfolio_land_prices(tenant uuid, upsert boolean) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
    written bigint;
BEGIN
    -- Valuations from the first date on are computed again by the next run.
    DELETE FROM portfolio_valuations WHERE as_of >= (SELECT min(s.date::date) FROM atrium_import_stage s);
    BEGIN
        MERGE INTO portfolio_prices AS p
        USING (SELECT s.symbol, s.date::date AS on_date, s.close::numeric AS close FROM atrium_import_stage s) AS s
        ON p.tenant_id = tenant AND p.symbol = s.symbol AND p.on_date = s.on_date
        WHEN MATCHED AND upsert AND p.close IS DISTINCT FROM s.close THEN
            UPDATE SET close = s.close, source = 'import'
        WHEN NOT MATCHED THEN
            INSERT (tenant_id, symbol, on_date, close, source) VALUES (tenant, s.symbol, s.on_date, s.close, 'import');
        GET DIAGNOSTICS written = ROW_COUNT;
    EXCEPTION WHEN unique_violation THEN
        WITH landed AS (
            INSERT INTO portfolio_prices AS p (tenant_id, symbol, on_date, close, source)
            SELECT tenant, s.symbol, s.date::date, s.close::numeric, 'import' FROM atrium_import_stage s
            ON CONFLICT (tenant_id, symbol, on_date) DO UPDATE SET close = excluded.close, source = excluded.source
            WHERE upsert AND p.close IS DISTINCT FROM excluded.close
            RETURNING 1
        ) SELECT count(*) INTO written FROM landed;
    END;
    RETURN written;
END
$$;
