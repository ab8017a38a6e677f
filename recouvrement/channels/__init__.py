"""Ways a letter leaves the building: e-mail over SMTP (the postal batch is a PDF from render.pdf)."""
