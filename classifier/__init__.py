"""The torch side of serving: image intake, the model catalog, inference, and one seam.

Backends use classifier.serving (create_served_model and the ServedModel it
returns) and classifier.intake; everything else here lives behind that seam.
The web side they share with the gateway is the torch-free webservice package.
"""
