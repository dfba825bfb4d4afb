"""One parser module per config section; each reads its part of the merged YAML and returns its
part of the tree, with errors that name the offending key. Kept empty: importing one section
must not import the others."""
