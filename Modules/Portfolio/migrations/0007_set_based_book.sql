-- What the set-based booking of a FIFO ledger computes with (SetBasedBook.swift).
--
-- FIFO matches a sell against the oldest units first, so on one instrument the units of
-- every buy are a range of the cumulative quantity bought ([starts_at, starts_at +
-- units), in units after the splits up to the report's date), and the units sold through
-- any point are the range [0, sold): a lot's part taken by sells is the overlap of the
-- two, computed for every lot at once by window sums instead of walking sells one by one.
-- A lot's cost taken is its cumulative share, portfolio_share(cost, taken, units), one
-- rounding however many sells took from it; the Swift LotBook takes the same shares,
-- and the tests hold the two to the same figures.

-- The product of a column (the ratios of the splits after an entry), exact.
CREATE AGGREGATE portfolio_product (numeric) (sfunc = numeric_mul, stype = numeric, initcond = '1');

-- amount × part ÷ whole, rounded half-even to 10 places, exactly (integer division and
-- its remainder, never a rounded quotient rounded again); amount itself when the part
-- is the whole. For non-negative arguments, whole > 0.
CREATE FUNCTION portfolio_share(amount numeric, part numeric, whole numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        WHEN part = whole THEN amount
        WHEN part = 0 THEN 0
        ELSE (SELECT trim_scale((q + CASE WHEN 2 * (n - q * whole) > whole OR (2 * (n - q * whole) = whole AND mod(q, 2) = 1) THEN 1 ELSE 0 END)
                                * 0.0000000001)
              FROM (SELECT n, div(n, whole) AS q FROM (SELECT amount * part * 10000000000 AS n) scaled) divided)
    END
$$;
