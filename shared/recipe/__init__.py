"""What a request asks for: the edit recipe's shape and parsing, batch names."""
