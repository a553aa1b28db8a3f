"""Reading the source: which families and months exist, waiting for a month's file, downloading it,
reading it with its family's declared schema and applying the cleaning rules.

``families`` declares each TLC file family once; everything else derives from it.
"""
