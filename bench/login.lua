-- wrk script: POST a login for the demo owner of the acme tenant.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"owner@acme.test","password":"acme-demo-owner"}'
