print("custos")
