# The code version this release serves; every response carries it as `X-Code`.
# The end-to-end tests rewrite this line to tell releases apart.
CODE = "code-1"
