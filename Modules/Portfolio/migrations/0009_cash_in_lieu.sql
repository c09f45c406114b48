-- A split whose issuer pays cash for fractions names the price per new unit it pays
-- (the cash-in-lieu price it announces). Every ledger booking the split then keeps the
-- whole units of the position and sells the fraction at that price, on the split's date.
-- Without a price the fractions are kept (brokers that hold fractional shares).
ALTER TABLE portfolio_corporate_actions ADD COLUMN cash_in_lieu_price numeric CHECK (cash_in_lieu_price > 0);
