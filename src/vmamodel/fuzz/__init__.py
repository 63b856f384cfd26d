"""``vmamodel fuzz``: random call sequences on the model and on the host kernel, compared
after every call; differences shrunk to scenario files that ``vmamodel diff`` reproduces."""
