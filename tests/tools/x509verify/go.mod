module x509verify

go 1.19
